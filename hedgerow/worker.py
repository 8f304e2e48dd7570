"""``python -m hedgerow.worker --guid G --port P``: a worker process a node starts.

It reads its config as one JSON line on stdin; see `hedgerow.node._worker_main`.
"""

from hedgerow.node._worker_main import main

if __name__ == "__main__":
    main()
