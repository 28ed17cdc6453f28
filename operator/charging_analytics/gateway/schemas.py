"""Schema validation of incoming OCPP calls, compiled.

The ``ocpp`` library validates each call (and each result) with ``jsonschema``'s
``Draft4Validator``, which interprets the schema on every message: about half of the gateway's
CPU per call. Here the same schema files, read through the library, are compiled once per
action with ``fastjsonschema`` under the same draft-04 rules and without format checks (the
library checks no formats). A payload the compiled check accepts goes on; one it rejects is
validated again by the library, so the CallError a charger gets is the library's, word for word.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, cast

import fastjsonschema
from ocpp.messages import Call, MessageType, get_validator, validate_payload

_log = logging.getLogger(__name__)

_DRAFT4 = "http://json-schema.org/draft-04/schema#"


@functools.cache
def _compiled(version: str, action: str) -> Callable[[Any], Any] | None:
    """The compiled check of ``action``'s request schema; ``None`` if it cannot be compiled
    (the library's validator is used for that action then)."""
    schema = get_validator(MessageType.Call, action, version).schema
    try:
        check = fastjsonschema.compile({**schema, "$schema": _DRAFT4}, use_default=False, use_formats=False)
    except (fastjsonschema.JsonSchemaDefinitionException, ValueError) as err:
        _log.warning("OCPP %s %s schema not compiled, validated by the library: %s", version, action, err)
        return None
    return cast(Callable[[Any], Any], check)


async def validate_call(message: Call, version: str) -> None:
    """Raise the ``ocpp`` library's OCPPError for a call whose payload breaks its schema."""
    check = _compiled(version, message.action)
    if check is not None:
        try:
            check(message.payload)
            return
        except fastjsonschema.JsonSchemaValueException:
            pass  # the library's own validation below says what is wrong
    await validate_payload(message, version)


__all__ = ["validate_call"]
