"""Offline address resolution on the bundled region map, and distances."""

from __future__ import annotations

import pytest

from ordercore.domain.geo import Precision, Region, distance_km, resolve_address, resolve_text
from ordercore.domain.orders import Address
from ordercore.errors import OrderCoreError, UnresolvedAddress

# One realistic receiver address per province-level division: (text, adcode, province,
# city, district). Cities of municipalities are the municipality itself.
EVERY_PROVINCE = [
    ("北京市海淀区中关村大街27号", "110108", "北京市", "北京市", "海淀区"),
    ("天津市和平区南京路189号", "120101", "天津市", "天津市", "和平区"),
    ("河北省石家庄市长安区中山东路", "130102", "河北省", "石家庄市", "长安区"),
    ("山西省太原市小店区长风街", "140105", "山西省", "太原市", "小店区"),
    ("内蒙古自治区呼和浩特市新城区新华大街", "150102", "内蒙古自治区", "呼和浩特市", "新城区"),
    ("辽宁省沈阳市和平区南京北街", "210102", "辽宁省", "沈阳市", "和平区"),
    ("吉林省长春市朝阳区人民大街", "220104", "吉林省", "长春市", "朝阳区"),
    ("黑龙江省哈尔滨市南岗区西大直街", "230103", "黑龙江省", "哈尔滨市", "南岗区"),
    ("上海市浦东新区世纪大道100号", "310115", "上海市", "上海市", "浦东新区"),
    ("江苏省南京市鼓楼区中山路", "320106", "江苏省", "南京市", "鼓楼区"),
    ("浙江省杭州市余杭区文一西路969号", "330110", "浙江省", "杭州市", "余杭区"),
    ("安徽省合肥市蜀山区长江西路", "340104", "安徽省", "合肥市", "蜀山区"),
    ("福建省厦门市思明区鹭江道", "350203", "福建省", "厦门市", "思明区"),
    ("江西省南昌市东湖区八一大道", "360102", "江西省", "南昌市", "东湖区"),
    ("山东省青岛市市南区香港中路", "370202", "山东省", "青岛市", "市南区"),
    ("河南省郑州市金水区花园路", "410105", "河南省", "郑州市", "金水区"),
    ("湖北省武汉市洪山区珞喻路", "420111", "湖北省", "武汉市", "洪山区"),
    ("湖南省长沙市岳麓区麓山南路", "430104", "湖南省", "长沙市", "岳麓区"),
    ("广东省深圳市南山区深南大道10000号", "440305", "广东省", "深圳市", "南山区"),
    ("广西壮族自治区南宁市青秀区民族大道", "450103", "广西壮族自治区", "南宁市", "青秀区"),
    ("海南省海口市美兰区国兴大道", "460108", "海南省", "海口市", "美兰区"),
    ("重庆市渝中区解放碑", "500103", "重庆市", "重庆市", "渝中区"),
    ("四川省成都市武侯区人民南路四段", "510107", "四川省", "成都市", "武侯区"),
    ("贵州省贵阳市南明区中华南路", "520102", "贵州省", "贵阳市", "南明区"),
    ("云南省昆明市五华区东风西路", "530102", "云南省", "昆明市", "五华区"),
    ("西藏自治区拉萨市城关区北京中路", "540102", "西藏自治区", "拉萨市", "城关区"),
    ("陕西省西安市雁塔区长安南路", "610113", "陕西省", "西安市", "雁塔区"),
    ("甘肃省兰州市城关区东岗西路", "620102", "甘肃省", "兰州市", "城关区"),
    ("青海省西宁市城西区五四大街", "630104", "青海省", "西宁市", "城西区"),
    ("宁夏回族自治区银川市兴庆区解放西街", "640104", "宁夏回族自治区", "银川市", "兴庆区"),
    (
        "新疆维吾尔自治区乌鲁木齐市天山区人民路",
        "650102",
        "新疆维吾尔自治区",
        "乌鲁木齐市",
        "天山区",
    ),
]


@pytest.mark.parametrize(("text", "adcode", "province", "city", "district"), EVERY_PROVINCE)
def test_every_province_resolves_to_its_district(
    text: str, adcode: str, province: str, city: str, district: str
) -> None:
    """A full address in each province resolves to the right district, adcode and names."""
    region = resolve_text(text)
    assert (region.adcode, region.province, region.city, region.district) == (
        adcode,
        province,
        city,
        district,
    )
    assert region.precision is Precision.DISTRICT


@pytest.mark.parametrize(
    ("text", "adcode"),
    [
        ("北京朝阳区建国路88号", "110105"),
        ("内蒙古包头市", "150200"),
        ("广西南宁市", "450100"),
        ("广西自治区桂林市", "450300"),
        ("新疆喀什地区", "653100"),
        ("宁夏银川", "640100"),
        ("延边州延吉市", "222401"),
        ("四川阿坝州汶川县", "513221"),
        ("青海海南州共和县", "632521"),
        ("中国浙江省宁波市鄞州区", "330212"),
        ("浙江 杭州 西湖区", "330106"),
    ],
)
def test_short_names_and_aliases_resolve(text: str, adcode: str) -> None:
    """Short province names, 自治区/州 aliases, spaces and a leading country all resolve."""
    assert resolve_text(text).adcode == adcode


def test_a_repeated_municipality_name_is_skipped() -> None:
    """Platforms write 北京 北京市 朝阳区 (the municipality again as the city)."""
    address = Address(province="北京", city="北京市", district="朝阳区", street="建国路")
    region = resolve_address(address)
    assert (region.city, region.district, region.adcode) == ("北京市", "朝阳区", "110105")


def test_a_municipality_alone_is_city_precise() -> None:
    """A bare municipality places the receiver in that city."""
    region = resolve_text("上海市")
    assert (region.precision, region.city) == (Precision.CITY, "上海市")


def test_a_county_level_city_under_a_province_is_a_city() -> None:
    """仙桃市 (directly under Hubei, no prefecture) resolves as a city."""
    region = resolve_text("湖北省仙桃市")
    assert (region.city, region.adcode, region.precision) == ("仙桃市", "429004", Precision.CITY)


def test_same_name_in_two_provinces_follows_the_province() -> None:
    """朝阳区 of Beijing and 朝阳区 of Changchun are told apart by the province."""
    assert resolve_text("北京市朝阳区").adcode == "110105"
    assert resolve_text("吉林省长春市朝阳区").adcode == "220104"


def test_a_city_without_a_province_is_placed() -> None:
    """A unique city name alone finds its province."""
    region = resolve_text("苏州市工业园区星湖街")
    assert (region.province, region.city) == ("江苏省", "苏州市")


def test_a_province_alone_is_province_precise() -> None:
    """An address naming only a province is placed at its capital's coordinates."""
    region = resolve_text("云南省某地")
    assert (region.precision, region.province, region.adcode) == (
        Precision.PROVINCE,
        "云南省",
        "530000",
    )


def test_structured_fields_are_read_in_order() -> None:
    """An Address's province, city and district fields resolve like the joined text."""
    address = Address(province="辽宁省", city="本溪市", district="本溪满族自治县")
    assert resolve_address(address).adcode == "210521"


@pytest.mark.parametrize("text", ["火星基地一号", "1234 Main Street", ""])
def test_unplaceable_text_is_a_typed_error(text: str) -> None:
    """Text naming no division raises UnresolvedAddress, an OrderCoreError."""
    with pytest.raises(UnresolvedAddress) as caught:
        resolve_text(text)
    assert isinstance(caught.value, OrderCoreError)
    assert caught.value.field == "address"


def test_the_unresolved_address_is_masked_in_the_error() -> None:
    """The receiver's address text does not appear in full in the message."""
    with pytest.raises(UnresolvedAddress) as caught:
        resolve_text("火星基地一号楼三单元")
    assert "火星基地一号楼三单元" not in str(caught.value)


def test_addresses_outside_china_are_refused() -> None:
    """Another country raises UnresolvedAddress naming address.country."""
    with pytest.raises(UnresolvedAddress) as caught:
        resolve_address(Address(country="US", province="California"))
    assert caught.value.field == "address.country"


def test_distance_is_the_great_circle_distance() -> None:
    """Beijing to Shanghai is about 1,067 km; a point is 0 km from itself."""
    beijing, shanghai = resolve_text("北京市"), resolve_text("上海市")
    assert distance_km(beijing, shanghai) == pytest.approx(1067, abs=5)
    assert distance_km(shanghai, shanghai) == 0


def test_a_bare_point_region_measures_like_any_other() -> None:
    """Region.at builds a located point without an adcode."""
    point = Region.at(31.2304, 121.4737, label="dock 3")
    assert distance_km(point, resolve_text("上海市")) == pytest.approx(0, abs=0.1)
