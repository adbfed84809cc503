"""The subset of Go text/template that kkc's Secret templates use, filled the way
External Secrets Operator fills them: ``{{ .key }}``, ``{{ index . "key" }}`` and the
``urlquery`` pipeline function. Anything else is an error, never passed through."""

from __future__ import annotations

import re
import urllib.parse

ACTION = re.compile(r"{{-?\s*(.*?)\s*-?}}", re.DOTALL)
FIELD = re.compile(r'^(?:\.([A-Za-z_][A-Za-z0-9_]*)|index\s+\.\s+"([^"]+)")$')


class TemplateError(ValueError):
    pass


def urlquery(value: str) -> str:
    """Go's urlquery: QueryEscape (space as +)."""
    return urllib.parse.quote_plus(value)


def regex_find(value: str, pattern: str) -> str:
    """Sprig's regexFind: the first match of a Go (RE2) pattern, or ""."""
    found = re.search(pattern, value)
    return found.group(0) if found else ""


FUNCTIONS = {"urlquery": urlquery}
WITH_ARGUMENT = {"regexFind": regex_find}
CALL = re.compile(r"^(\w+)\s+`([^`]*)`$")


def render(template: str, data: dict[str, str]) -> str:
    def action(match: re.Match[str]) -> str:
        parts = [p.strip() for p in match.group(1).split("|")]
        field = FIELD.match(parts[0])
        if not field:
            raise TemplateError(f"unsupported template action {{{{ {match.group(1)} }}}}")
        key = field.group(1) or field.group(2)
        if key not in data:
            raise TemplateError(f"template reads key {key!r}, which the Secret does not have")
        value = data[key]
        for name in parts[1:]:
            call = CALL.match(name)
            if call and call.group(1) in WITH_ARGUMENT:
                value = WITH_ARGUMENT[call.group(1)](value, call.group(2))
            elif name in FUNCTIONS:
                value = FUNCTIONS[name](value)
            else:
                raise TemplateError(f"unsupported template function {name!r}")
        return value

    return ACTION.sub(action, template)
