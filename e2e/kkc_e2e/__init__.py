"""kkc's end-to-end bring-up harness (issue 13): runs the rendered control plane of the
example sites outside containers, against real MariaDB, RabbitMQ, memcached and OVN.

Entry point: ``python -m kkc_e2e`` (``make e2e``); see docs/e2e.md."""
