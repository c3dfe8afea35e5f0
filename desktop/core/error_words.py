"""Server error codes in plain words, for the window. The server's code is always shown beside them."""

from __future__ import annotations

#: code (or error type) -> what it means for the user and what to do.
PLAIN_WORDS: dict[str, str] = {
    "invalid_api_key": "The API key was refused. Check it in Settings → API key, or set OPENAI_API_KEY.",
    "invalid_authentication": "The API key was refused. Check it in Settings → API key, or set OPENAI_API_KEY.",
    "authentication_error": "The API key was refused. Check it in Settings → API key, or set OPENAI_API_KEY.",
    "insufficient_quota": "Your account has run out of quota or credit. Add credit or check the plan and billing limits.",
    "rate_limit_exceeded": "Too many requests: the rate limit was reached. Wait a moment and try again.",
    "rate_limit_error": "Too many requests: the rate limit was reached. Wait a moment and try again.",
    "model_not_found": "The model is not available to this key. Choose another model with --model.",
    "session_expired": "The session reached its time limit; Parley opens a new one.",
    "server_error": "The service had an internal problem. Try again in a moment.",
    "conversation_already_has_active_response": "An answer is still in progress; the request waits for it.",
    "response_cancel_not_active": "There was no answer in progress to stop.",
    "input_audio_buffer_commit_empty": "Too little audio to send: speak a little longer.",
}

#: Words in a code that identify a family when the exact code is not listed.
_FAMILIES = (
    ("rate_limit", PLAIN_WORDS["rate_limit_exceeded"]),
    ("quota", PLAIN_WORDS["insufficient_quota"]),
    ("api_key", PLAIN_WORDS["invalid_api_key"]),
    ("auth", PLAIN_WORDS["invalid_api_key"]),
)


def plain_words(code: str, message: str = "", where: str = "") -> str:
    """One line for the window: what happened in plain words, then the server's own message."""
    code = code or "error"
    words = PLAIN_WORDS.get(code)
    if words is None:
        low = code.lower()
        words = next((w for key, w in _FAMILIES if key in low), None)
    message = " ".join(message.split())[:300]
    if words is None:
        return f"Server error{where}: {message or code}"
    if message and message.rstrip(".") not in words:
        return f"{words} (Server{where}: {message})"
    return words + (f" ({where.strip(' ()')})" if where else "")
