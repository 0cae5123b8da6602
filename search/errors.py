"""Errors a user can fix. The CLI prints them as one line and exits with code 2."""

from __future__ import annotations


class UserError(Exception):
    """A bad input (file, field, value, address): the message says what was given and what is valid."""
