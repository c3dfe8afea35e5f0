"""Parley: talk to realtime speech-to-speech models with your voice, images and screen."""

__version__ = "0.1.0"
