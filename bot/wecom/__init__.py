"""The WeCom (企业微信) adapter: callback crypto, and (coming) parsing, API client and renderer glue."""
