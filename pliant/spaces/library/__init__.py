"""Ready-made search spaces, written with placeholders the way a user would write them."""

__all__: list[str] = []
