"""The generational-collapse simulator. Never imports the web layer (`service/`)."""
