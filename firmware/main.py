# The monitor's entry point on the board (after boot.py). Ctrl-C from mpremote stops it
# with the interlock open and returns to the REPL.
from tgfw.app import main

main()
