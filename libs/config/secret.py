"""Reading secrets at the moment of use, so rotated secret files take effect without a restart."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import SecretStr

if TYPE_CHECKING:
    from libs.config.settings import ServiceSettings


def read_secret(settings: ServiceSettings, name: str) -> str | None:
    """Return the current value of a secret (or file-capable) setting.

    When the setting came from `<NAME>_FILE`, the file is read again on every call: Kubernetes
    updates mounted secrets in place, so a rotated key is picked up by the next call. Otherwise the
    value loaded at start is returned.

    Args:
        settings: The service's settings.
        name: Field name, e.g. `"mesh_auth_token"`.

    Returns:
        The plain value, or None when the setting is unset.

    Raises:
        OSError: The secret file has gone; callers treat this like any failed dependency.
    """
    path = settings.secret_file(name)
    if path is not None:
        return Path(path).read_text(encoding="utf-8").strip()
    value = getattr(settings, name)
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    return value


def parse_key_set(raw: str) -> dict[str, str]:
    """Parse a key set given as a JSON object `{"kid": "key material", ...}`.

    Two entries are the normal state during rotation: the new key signs while the old one still
    verifies tokens issued before the switch.

    Args:
        raw: JSON text.

    Returns:
        Mapping of key id to key material.

    Raises:
        ValueError: The text is not a non-empty JSON object of strings; the message never includes
            the text, which is secret.
    """
    try:
        keys = json.loads(raw)
    except json.JSONDecodeError:
        raise ValueError('must be a JSON object {"kid": "key"}, and is not valid JSON') from None
    if not isinstance(keys, dict) or not keys:
        raise ValueError('must be a non-empty JSON object {"kid": "key"}')
    if not all(isinstance(k, str) and isinstance(v, str) and v for k, v in keys.items()):
        raise ValueError("every key id and key must be a non-empty string")
    return keys
