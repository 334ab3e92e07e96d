"""Maintainer script: rebuild ``regions.json`` from cpca's ``adcodes.csv`` (not imported).

Run ``python -m ordercore.domain.geo._regenerate path/to/adcodes.csv path/to/56_nations.csv``
with the two files of the ``cpca`` 0.5.5 wheel (MIT licence, (c) 2018 QinYuan Du; the
adcodes are the National Bureau of Statistics' administrative division codes, the
coordinates are each division's seat). Rows without coordinates (the ``市辖区`` and
``县`` placeholders) are dropped; coordinates are rounded to 4 decimals (about 11 m).
"""

from __future__ import annotations

import csv
import json
import re
import sys
from pathlib import Path

_PROVINCE_SUFFIX = re.compile(r"(壮族自治区|回族自治区|维吾尔自治区|自治区|特别行政区|省|市)$")
_CITY_SUFFIX = re.compile(r"(市|地区|盟|林区)$")
_COUNTY_SUFFIX = re.compile(r"(区|县|市|旗)$")
_EXTRA_NATIONS = ("蒙古", "哈萨克", "柯尔克孜")


def _strip_nations(name: str, nations: list[str]) -> str:
    changed = True
    while changed:
        changed = False
        for nation in nations:
            if name.endswith(nation) and len(name) - len(nation) >= 2:
                name = name[: -len(nation)]
                changed = True
    return name


def aliases(adcode: str, name: str, nations: list[str]) -> list[str]:
    """Shorter names people write for a division (北京 for 北京市, 延边 for 延边朝鲜族自治州)."""
    found: list[str] = []
    if adcode.endswith("0000"):
        short = _PROVINCE_SUFFIX.sub("", name)
        if name.endswith("自治区") and not name.endswith("特别行政区"):
            found.append(short + "自治区")
    elif adcode.endswith("00") or adcode[2:4] == "90":
        if name.endswith("自治州"):
            short = _strip_nations(name[: -len("自治州")], nations)
            found.append(short + "州")
        else:
            short = _CITY_SUFFIX.sub("", name)
    else:
        short = name if "自治" in name else _COUNTY_SUFFIX.sub("", name)
    if len(short) >= 2:
        found.append(short)
    return [alias for alias in dict.fromkeys(found) if alias != name]


def main(adcodes: Path, nations_file: Path, out: Path) -> None:
    nations = [line.strip() for line in nations_file.read_text("utf-8").splitlines() if line]
    nations = sorted({*nations, *_EXTRA_NATIONS}, key=len, reverse=True)
    rows = []
    with adcodes.open(encoding="utf-8") as handle:
        for record in csv.DictReader(handle):
            if not record["longitude"] or not record["latitude"]:
                continue
            code = record["adcode"][:6]
            if code[4:] == "00" and code[2:4] != "00" and record["name"] in ("市辖区", "县"):
                continue
            lon = round(float(record["longitude"]), 4)
            lat = round(float(record["latitude"]), 4)
            rows.append([code, record["name"], lon, lat, aliases(code, record["name"], nations)])
    rows.sort()
    document = {
        "source": "cpca 0.5.5 resources/adcodes.csv (MIT); NBS division codes, seat coordinates",
        "columns": ["adcode", "name", "lon", "lat", "aliases"],
        "regions": rows,
    }
    text = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    out.write_text(text.replace("],[", "],\n["), "utf-8")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), Path(__file__).with_name("regions.json"))
