"""LayoutRenderer: HTML, JSON render tree and PDF renders of form versions over the API."""
