"""`python -m imgclust_desktop` opens the window, like `imgclust-desktop`."""

from imgclust_desktop.gui.app import main

if __name__ == "__main__":
    raise SystemExit(main())
