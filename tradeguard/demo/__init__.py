"""`tradeguard demo`: a scripted takeover pump through the whole engine on the embedded broker."""
