"""The live dashboard of `thermoguard monitor` and `thermoguard demo`.

model.py  what the board says, as state: fed decoded items and a clock, no I/O
view.py   the model drawn with rich (banner, channels, link health, trend, events)
keys.py   what a key press means: arm with confirmation, disarm, reset with a reason, quit
plain.py  the model as plain lines, for a stdout that is not a terminal
live.py   the loop that joins them: items from another thread, the terminal, the keys
"""
