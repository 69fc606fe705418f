"""Keyed user pseudonyms: user_key = HMAC-SHA256(key, decimal user id), first 128 bits as hex.

A keyed hash, not a salted one: without the key nobody can recompute a user's pseudonym from a
guessed id (ids are small integers, so an unkeyed or leaked-salt hash is reversible by trying them
all). The key comes from AD_PSEUDONYM_KEY and is never written into SQL: dbt and Python both call
the DuckDB function `user_pseudonym(user_id)`, registered on every connection from this one
definition (Python's through `ml.warehouse.connect`, dbt's through `ml.privacy.dbt_plugin`).
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import os

import pyarrow as pa

KEY_VARIABLE = "AD_PSEUDONYM_KEY"
# The demo's key: fine for simulated data, never for real logs (the daily job warns loudly).
DEV_KEY = "dev-pseudonym-key-not-secret"
SQL_FUNCTION = "user_pseudonym"
HEX_DIGITS = 32  # HMAC-SHA256 truncated to 128 bits (RFC 2104 section 5 allows truncation)

log = logging.getLogger(__name__)


def pseudonym_key(env: dict[str, str] | None = None) -> str:
    return (os.environ if env is None else env).get(KEY_VARIABLE) or DEV_KEY


def pseudonymize(user_id: int | str, key: str) -> str:
    """A user's pseudonym under `key`: the same value as SQL's user_pseudonym(user_id)."""
    return hmac.new(key.encode(), str(int(user_id)).encode(), hashlib.sha256).hexdigest()[:HEX_DIGITS]


def register_pseudonym_function(conn, key: str | None = None) -> None:
    """Define user_pseudonym(BIGINT) -> VARCHAR on a DuckDB connection (nulls stay null)."""
    secret = (key or pseudonym_key()).encode()

    def pseudonyms(user_ids: pa.Array) -> pa.Array:
        return pa.array([hmac.new(secret, str(user_id).encode(), hashlib.sha256).hexdigest()[:HEX_DIGITS]
                         for user_id in user_ids.to_pylist()], type=pa.string())

    conn.create_function(SQL_FUNCTION, pseudonyms, ["BIGINT"], "VARCHAR", type="arrow", side_effects=False)


def warn_if_dev_key_on_real_data(key: str, simulated: bool, logger: logging.Logger = log) -> bool:
    """Log a loud warning when real (not simulated) logs are pseudonymized with the public dev key;
    True when it warned."""
    if key != DEV_KEY or simulated:
        return False
    logger.warning("!" * 72 + f"\nUser ids are pseudonymized with the PUBLIC development key: anyone can "
                   f"recompute them.\nSet {KEY_VARIABLE} to a long random secret before processing real logs "
                   f"(then rebuild: every user_key changes).\n" + "!" * 72)
    return True
