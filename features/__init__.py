"""The Feast feature repository (entities, sources, views, services) and its settings profiles."""
