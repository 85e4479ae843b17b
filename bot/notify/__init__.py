"""Chat notifications: domain events -> deliveries (cards, card updates, notices) -> platforms."""
