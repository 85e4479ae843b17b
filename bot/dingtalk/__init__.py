"""The DingTalk (钉钉) adapter: callback crypto, and (coming) parsing, API client and renderer glue."""
