"""Log inspection: read JSON-lines logs of many agents (and the emulator's
scenario log), merge them into one timeline, summarise what each observer saw,
and draw it as a self-contained HTML report."""
