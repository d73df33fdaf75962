"""Entities: who and what features describe. Join keys match the lake's id columns (strings)."""

from feast import Entity, ValueType

# A value type is declared so `apply` never has to open the data to infer the join key's type.
user = Entity(
    name="user",
    join_keys=["user_id"],
    value_type=ValueType.STRING,
    description="A person who rates or interacts with items; user_id as in the lake's interactions table.",
)

item = Entity(
    name="item",
    join_keys=["item_id"],
    value_type=ValueType.STRING,
    description="A catalogue item (movie, product); item_id as in the lake's items table.",
)
