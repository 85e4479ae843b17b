"""work_order_change webhooks: the signature (signature.py), who subscribes (subscriptions.py) and
the sender that POSTs the recorded calls (sender.py). See docs/webhooks.md."""
