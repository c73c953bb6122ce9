"""Writes a small city for the schemathesis run into a directory: a grid layer (two districts,
three grids, as the API tests' fixture) and a few items of each layer, as GeoJSON files for
`safegrid import`.

Usage: python3 seed.py DIR
"""

import json
import sys
from pathlib import Path


def square(x0, y0, x1, y1):
    return {"type": "MultiPolygon", "coordinates": [[[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]]}


def unit(code, name, level, geom, manager=None):
    props = {"code": code, "name": name, "level": level}
    if manager:
        props["manager"] = manager
        props["manager_phone"] = "13800000000"
    return {"type": "Feature", "geometry": geom, "properties": props}


GRIDS = [
    unit("440304", "福田区", "district", square(114.00, 22.50, 114.10, 22.60)),
    unit("440304001", "福田第001网格", "grid", square(114.00, 22.50, 114.05, 22.60), "张伟"),
    unit("440304002", "福田第002网格", "grid", square(114.05, 22.50, 114.10, 22.60), "李娜"),
    unit("440303", "罗湖区", "district", square(114.10, 22.50, 114.20, 22.60)),
    unit("440303001", "罗湖第001网格", "grid", square(114.10, 22.50, 114.20, 22.60), "王芳"),
]


def point(lon, lat, props):
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]}, "properties": props}


def places(n):
    """n points spread over the three grids (west, east, Luohu) and one outside every grid."""
    spots = [(114.02, 22.55), (114.07, 22.53), (114.15, 22.57), (113.90, 22.52)]
    return [(spots[i % len(spots)][0] + 0.001 * i, spots[i % len(spots)][1] + 0.0005 * i) for i in range(n)]


def layers():
    incidents = [
        point(lon, lat, {"type": ["theft", "fire", "dispute"][i % 3], "priority": 1 + i % 4,
                         "status": ["open", "dispatched", "on_scene", "closed"][i % 4],
                         "reported_at": f"2026-11-{1 + i:02d}T08:00:00+08:00", "address": f"深南大道{i}号"})
        for i, (lon, lat) in enumerate(places(8))
    ]
    housing = [
        point(lon, lat, {"address": f"福华路{i}号", "units": 10 + i, "tenant_count": 20 + i,
                         "safety_rating": "abcd"[i % 4], "last_inspection": "2026-10-01"})
        for i, (lon, lat) in enumerate(places(6))
    ]
    posts = [
        point(lon, lat, {"kind": ["security_post", "safety_station", "police_room"][i % 3], "name": f"平安岗{i}",
                         "phone": "0755-0000000", "opening_hours": "24h" if i % 2 else "08:00-22:00"})
        for i, (lon, lat) in enumerate(places(5))
    ]
    responders = [
        point(lon, lat, {"kind": ["patrol", "police", "security_guard"][i % 3], "callsign": f"巡-{i:02d}",
                         "status": "available", "capabilities": ["first_aid"] if i % 2 else [],
                         "device_id": f"seed-device-{i}"})
        for i, (lon, lat) in enumerate(places(6))
    ]
    key_personnel = [
        point(lon, lat, {"category": "监管", "name": f"人员{i}", "assigned_grid": ["440304001", "440304002", "440303001"][i % 3],
                         "active": True})
        for i, (lon, lat) in enumerate(places(4))
    ]
    return {"incidents": incidents, "rental_housing": housing, "posts": posts, "responders": responders,
            "key_personnel": key_personnel}


def main():
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    (out / "grids.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": GRIDS}, ensure_ascii=False))
    for name, features in layers().items():
        (out / f"{name}.geojson").write_text(
            json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False))


if __name__ == "__main__":
    main()
