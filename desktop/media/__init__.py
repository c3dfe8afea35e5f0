"""Images in: one pipeline for every source (file, drop, paste, screen), and screen capture. No Qt here."""
