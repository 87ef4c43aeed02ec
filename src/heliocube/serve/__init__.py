"""A local read API over a workflow's output root: the seed's image-parameter web API and HEK-clone event queries.

:func:`~heliocube.serve.app.create_app` builds the FastAPI application (``heliocube serve ROOT`` runs it with
uvicorn); :mod:`heliocube.serve.client` mirrors the seed's Python calls against it.
"""
