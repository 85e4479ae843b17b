"""Hooks (participant type hook): the worker that makes every recorded hook call, signed, with retries."""
