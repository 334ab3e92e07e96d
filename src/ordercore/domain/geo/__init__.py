"""Offline geography: place a Chinese receiver address on the map, measure distances.

The bundled ``regions.json`` holds every province, prefecture-level city and county of
mainland China (plus Hong Kong, Macao and Taiwan at province level) with its
administrative division code (adcode) and the coordinates of its seat, and the short
names people write (北京 for 北京市, 内蒙古 for 内蒙古自治区, 延边 for
延边朝鲜族自治州). It is derived from the MIT-licensed ``cpca`` package's data; see
``_regenerate.py`` and docs/routing.md. Nothing here touches the network.

::

    region = resolve_address(order.address)          # or resolve_text("广西南宁市青秀区...")
    region.precision, region.adcode                  # Precision.DISTRICT, "450103"
    distance_km(region, warehouse_region)

Matching reads the address largest region first (the Chinese order), preferring the
longest name at each step; a field that does not match at its level is skipped, so a
platform's ``city`` of ``市辖区`` or a repeated municipality name does no harm.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from importlib.resources import files
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from ordercore.domain.orders import Address
from ordercore.domain.privacy import mask_value
from ordercore.errors import UnresolvedAddress

__all__ = [
    "Division",
    "Precision",
    "Region",
    "RegionMap",
    "distance_km",
    "region_map",
    "resolve_address",
    "resolve_text",
]

_EARTH_RADIUS_KM = 6371.0088
_MUNICIPALITIES = frozenset({"11", "12", "31", "50"})
_NOISE = re.compile(r"[\s,，、/\\|·\-]+")
_COUNTRY_PREFIXES = ("中华人民共和国", "中国")
_CHINA = frozenset({"", "CN", "CHN", "CHINA", "中国", "中华人民共和国"})
_MIN_UNSCOPED_ALIAS = 3
"""Without a province to narrow the search, 2-character short names (中山, 朝阳) match
street names too often; only full names and longer short names are tried."""


class Precision(StrEnum):
    """How finely an address was placed."""

    PROVINCE = "province"
    CITY = "city"
    DISTRICT = "district"


Latitude = Annotated[float, Field(ge=-90, le=90)]
Longitude = Annotated[float, Field(ge=-180, le=180)]


class Region(BaseModel):
    """Where an address (or a warehouse) is: names, the finest adcode, coordinates.

    ``lat``/``lon`` are the seat of the finest division found (``precision``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    province: str = ""
    city: str = ""
    district: str = ""
    adcode: str = ""
    lat: Latitude
    lon: Longitude
    precision: Precision = Precision.DISTRICT

    @classmethod
    def at(cls, lat: float, lon: float, *, label: str = "") -> Region:
        """A bare point (a warehouse with known coordinates but no adcode)."""
        return cls(district=label, lat=lat, lon=lon, precision=Precision.DISTRICT)


def distance_km(a: Region, b: Region) -> float:
    """Great-circle (haversine) distance between two regions' coordinates, in km."""
    lat1, lon1, lat2, lon2 = map(math.radians, (a.lat, a.lon, b.lat, b.lon))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * _EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


@dataclass(frozen=True, slots=True)
class Division:
    """One administrative division of the bundled map."""

    adcode: str
    name: str
    lon: float
    lat: float
    aliases: tuple[str, ...]

    @property
    def labels(self) -> tuple[str, ...]:
        """The full name first, then the short ones."""
        return (self.name, *self.aliases)


class _Matcher:
    """Longest-label-first prefix matching over a set of divisions."""

    def __init__(self, divisions: Iterable[Division], *, min_alias: int = 1) -> None:
        pairs: dict[str, Division] = {}
        for division in divisions:
            for index, label in enumerate(division.labels):
                if index and len(label) < min_alias:
                    continue
                pairs.setdefault(label, division)
        self._by_label = pairs
        self._lengths = sorted({len(label) for label in pairs}, reverse=True)

    def match(self, text: str) -> tuple[Division, int] | None:
        """The division whose longest label starts ``text``, and that label's length."""
        for length in self._lengths:
            found = self._by_label.get(text[:length])
            if found is not None:
                return found, length
        return None

    def exact(self, text: str) -> Division | None:
        """The division with exactly this label."""
        return self._by_label.get(text)


class RegionMap:
    """The bundled divisions, indexed by level and parent, and the address resolver."""

    def __init__(self, divisions: Iterable[Division]) -> None:
        self.divisions: dict[str, Division] = {d.adcode: d for d in divisions}
        provinces = [d for d in self.divisions.values() if d.adcode.endswith("0000")]
        cities: dict[str, list[Division]] = {p.adcode: [] for p in provinces}
        counties: dict[str, list[Division]] = {}
        for division in self.divisions.values():
            code = division.adcode
            province = code[:2] + "0000"
            if code == province or province not in cities:
                continue
            if code[:2] in _MUNICIPALITIES:
                counties.setdefault(province, []).append(division)
            elif code.endswith("00") or code[:4] + "00" not in self.divisions:
                cities[province].append(division)  # prefecture, or county-level under province
            else:
                counties.setdefault(code[:4] + "00", []).append(division)
        self._provinces = _Matcher(provinces)
        self._cities = {code: _Matcher(found) for code, found in cities.items()}
        self._counties = {code: _Matcher(found) for code, found in counties.items()}
        self._county_parent = {
            d.adcode: parent for parent, found in counties.items() for d in found
        }
        every_city = [d for found in cities.values() for d in found]
        every_county = [d for found in counties.values() for d in found]
        self._any_city = _Matcher(every_city, min_alias=_MIN_UNSCOPED_ALIAS)
        self._any_county = _Matcher(_unique_names(every_county), min_alias=_MIN_UNSCOPED_ALIAS)

    @property
    def provinces(self) -> list[Division]:
        """Every province-level division, by adcode."""
        return sorted(
            (d for d in self.divisions.values() if d.adcode.endswith("0000")),
            key=lambda d: d.adcode,
        )

    def region(self, adcode: str) -> Region:
        """The region of one division by its 6-digit adcode (KeyError when unknown)."""
        division = self.divisions[adcode]
        province = self.divisions[adcode[:2] + "0000"]
        if division is province:
            return self._region(province, None, None)
        parent = self._county_parent.get(adcode)
        if parent is None:
            return self._region(province, division, None)
        city = None if parent == province.adcode else self.divisions[parent]
        return self._region(province, city, division)

    def resolve_text(self, text: str, *, field: str = "address") -> Region:
        """Place a free-text address; UnresolvedAddress when not even a province matches."""
        clean = _NOISE.sub("", text)
        for prefix in _COUNTRY_PREFIXES:
            if clean.startswith(prefix):
                clean = clean[len(prefix) :]
                break
        region = self._parse(clean)
        if region is None:
            raise UnresolvedAddress(
                field, mask_value(text), "no province, city or county of China matches it"
            )
        return region

    def resolve_address(self, address: Address) -> Region:
        """Place an order's address offline (UnresolvedAddress outside China or unknown)."""
        if address.country.strip().upper() not in _CHINA:
            raise UnresolvedAddress(
                "address.country", address.country, "only addresses in China are on the map"
            )
        parts = (address.province, address.city, address.district, address.street)
        text = "".join(part for part in parts if part)
        if not text:
            text = address.detail
        return self.resolve_text(text, field="address")

    # -- matching ---------------------------------------------------------------------------

    def _parse(self, text: str) -> Region | None:
        found = self._provinces.match(text)
        if found is None:
            return self._parse_unscoped(text)
        province, length = found
        rest = text[length:]
        if province.adcode[:2] in _MUNICIPALITIES:
            rest = _skip_repeats(rest, (*province.labels, "市辖区", "县"))
            county = self._match_in(self._counties, province.adcode, rest)
            return self._region(province, None, county)
        city_found = self._cities[province.adcode].match(rest)
        if city_found is None:
            county = self._county_anywhere_in(province, rest)
            if county is not None:
                return self.region(county.adcode)
            return self._region(province, None, None)
        city, length = city_found
        county = self._match_in(self._counties, city.adcode, rest[length:])
        return self._region(province, city, county)

    def _parse_unscoped(self, text: str) -> Region | None:
        city_found = self._any_city.match(text)
        if city_found is not None:
            city, length = city_found
            province = self.divisions[city.adcode[:2] + "0000"]
            county = self._match_in(self._counties, city.adcode, text[length:])
            return self._region(province, city, county)
        county_found = self._any_county.match(text)
        if county_found is not None:
            return self.region(county_found[0].adcode)
        return None

    def _county_anywhere_in(self, province: Division, text: str) -> Division | None:
        for city in self._cities_of(province):
            county = self._match_in(self._counties, city.adcode, text)
            if county is not None:
                return county
        return None

    def _cities_of(self, province: Division) -> list[Division]:
        prefix = province.adcode[:2]
        return [
            d
            for code, d in self.divisions.items()
            if code.startswith(prefix) and code.endswith("00") and d is not province
        ]

    @staticmethod
    def _match_in(index: Mapping[str, _Matcher], parent: str, text: str) -> Division | None:
        matcher = index.get(parent)
        if matcher is None or not text:
            return None
        found = matcher.match(text)
        return None if found is None else found[0]

    @staticmethod
    def _region(province: Division, city: Division | None, county: Division | None) -> Region:
        municipality = province.adcode[:2] in _MUNICIPALITIES
        finest = county or city or province
        if county is not None:
            precision = Precision.DISTRICT
        elif city is not None:
            precision = Precision.CITY
        else:
            precision = Precision.CITY if municipality else Precision.PROVINCE
        return Region(
            province=province.name,
            city=province.name if municipality else (city.name if city else ""),
            district=county.name if county else "",
            adcode=finest.adcode,
            lat=finest.lat,
            lon=finest.lon,
            precision=precision,
        )


def _skip_repeats(text: str, labels: Iterable[str]) -> str:
    """Drop a municipality's name (or 市辖区) repeated as the city: 北京市北京市朝阳区."""
    ordered = sorted(labels, key=len, reverse=True)
    changed = True
    while changed:
        changed = False
        for label in ordered:
            if text.startswith(label):
                text = text[len(label) :]
                changed = True
                break
    return text


def _unique_names(divisions: list[Division]) -> list[Division]:
    """Counties whose full name is unique in the country (safe to match without a province)."""
    seen: dict[str, int] = {}
    for division in divisions:
        seen[division.name] = seen.get(division.name, 0) + 1
    return [d for d in divisions if seen[d.name] == 1]


@cache
def region_map() -> RegionMap:
    """The bundled map, loaded once (package data read from the wheel, no network)."""
    raw = files(__package__).joinpath("regions.json").read_text(encoding="utf-8")
    rows = json.loads(raw)["regions"]
    return RegionMap(
        Division(code, name, float(lon), float(lat), tuple(aliases))
        for code, name, lon, lat, aliases in rows
    )


def resolve_address(address: Address) -> Region:
    """Place an order's address with the bundled map (see :meth:`RegionMap.resolve_address`)."""
    return region_map().resolve_address(address)


def resolve_text(text: str) -> Region:
    """Place a free-text address with the bundled map (see :meth:`RegionMap.resolve_text`)."""
    return region_map().resolve_text(text)
