"""PyInstaller entry script: the bundle starts the same main() as the `imgclust-desktop` command."""

from imgclust_desktop.gui.app import main

if __name__ == "__main__":
    raise SystemExit(main())
