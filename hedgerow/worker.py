"""``python -m hedgerow.worker --guid G --port P``: a worker process a node starts.

It reads its config as one JSON line on stdin; see `hedgerow.node._worker_main`.
"""

import gc

# A worker restarted after SIGKILL serves again only once it has imported what it
# hosts; the garbage collector has nothing to find in a fresh interpreter's imports
# and costs them about 5 %.
gc.disable()
try:
    from hedgerow.node._worker_main import main
finally:
    gc.enable()

if __name__ == "__main__":
    main()
