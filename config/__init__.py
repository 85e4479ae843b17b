"""Configuration: settings from the environment and the config directory (org, workflows, API apps).

- `config.settings`: `load_settings()` -> `Settings` (TICKETBOT_* variables), `describe()`
- `config.loader`: `load_config(dir)` -> `LoadedConfig(org, workflows, apps)`, `check_config(dir)`
- `config.org`, `config.workflows`, `config.apps`: the readers of each file
- `config.errors`: `ConfigError` (every located error in `.errors`), `SettingsError`

The YAML files next to this module are the shipped demo configuration.
"""
