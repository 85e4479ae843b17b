"""The ticket page: one ticket as a mobile-friendly HTML page (fields, flow diagram, log, actions),
reached by a signed per-viewer link (links), or through a platform's OAuth (oauth). Platform-neutral:
bot.app injects the platform's OAuth and the link signer."""
