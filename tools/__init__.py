"""Developer tools that are not part of the app or the server (never packaged for a phone)."""
