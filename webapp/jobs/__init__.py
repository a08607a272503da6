"""Jobs: heavy work (user export and import, personal data export) run by workers, watched by clients."""
