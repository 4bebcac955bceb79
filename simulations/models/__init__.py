"""Models behind the generation loop: each implements `simulations.loop.GenerativeModel`."""
