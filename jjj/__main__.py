from jjj.cli import main

# Guarded: worker processes (ingest's parallel parsing) import the main module again.
if __name__ == "__main__":
    raise SystemExit(main())
