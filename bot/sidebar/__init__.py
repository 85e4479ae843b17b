"""The work-order sidebar: a mobile page WeCom's chat toolbar (聊天工具栏) opens beside a 1:1 chat with
a customer, where staff create a work order for the customer or link chat records to one
(routes.py: HTTP; session.py: cookie, CSRF, OAuth state; context.py: what it shows; actions.py:
create and link; page.py: HTML; static/: its script and style)."""
