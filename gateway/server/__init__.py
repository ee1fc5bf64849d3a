"""The app factory, the service container and the domain registry."""
