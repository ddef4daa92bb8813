"""Prints every item of every Secret Service collection (label, attributes, secret) as JSON:
the end-to-end test searches it for passwords."""
import json

import secretstorage

connection = secretstorage.dbus_init()
items = []
for collection in secretstorage.get_all_collections(connection):
    if collection.is_locked():
        collection.unlock()
    for item in collection.get_all_items():
        items.append(
            {
                "label": item.get_label(),
                "attributes": item.get_attributes(),
                "secret": item.get_secret().decode("utf-8", "replace"),
            }
        )
print(json.dumps(items))
