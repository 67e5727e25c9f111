"""Run INSIDE the stack's venv: upload images to Glance unless one with that name and checksum
is there already. stdin: JSON {"auth": {...}, "images": [{name, file, disk_format, md5, size,
properties, replace_older}]}."""

import json
import sys

import openstack


def main() -> None:
    spec = json.load(sys.stdin)
    conn = openstack.connect(**spec["auth"])
    for want in spec["images"]:
        same_name = list(conn.image.images(name=want["name"]))
        for half_made in [i for i in same_name if i.status in ("queued", "saving", "killed")]:
            conn.image.delete_image(half_made, ignore_missing=True)   # an upload cut short
        found = [i for i in same_name if i.checksum == want["md5"] and i.status == "active"]
        image = found[0] if found else conn.image.create_image(
            name=want["name"], filename=want["file"], disk_format=want["disk_format"],
            container_format="bare", visibility="public", wait=True, **want.get("properties", {}))
        if want.get("replace_older"):      # one image by that name: an older build goes
            for older in same_name:
                if older.id != image.id and older.status == "active":
                    conn.image.delete_image(older, ignore_missing=True)
        image = conn.image.get_image(image.id)
        print("ok " + json.dumps({"id": image.id, "name": image.name, "status": image.status,
                                  "size": image.size, "checksum": image.checksum}), flush=True)


if __name__ == "__main__":
    main()
