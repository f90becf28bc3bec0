# Runs first at every power-on and reset: drive the RF interlock low before anything else.
# If the board file itself fails, the pin stays an input and the external pull-down keeps
# RF inhibited.
try:
    import board

    board.interlock()
except Exception as e:  # noqa: BLE001 - report, never stop the boot here
    print("thermoguard boot: cannot drive the interlock low:", e)
