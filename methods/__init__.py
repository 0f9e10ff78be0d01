"""Built-in search methods; importing this package registers them."""
