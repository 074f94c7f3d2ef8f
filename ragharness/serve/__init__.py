"""The review app (`ragharness serve`): runs, comparisons, trends and item histories from the run store, human
labels and preference votes recorded back into it, and a JSON API; see app.py for the request path."""
