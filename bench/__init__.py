"""The flash-sale benchmark (issue 6): the mesh's order-to-cash figures beside the transport ceiling.

`python -m bench --quick` starts the mesh with its sandbox as processes, drives orders through the
Shopify stand-in's checkout, waits until they are invoiced and reports figures taken from the
systems' own records. See bench/README.md for what each figure means and what is not built yet.
"""
