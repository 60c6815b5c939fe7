"""The three regions of the federation and their administrative divisions."""

from __future__ import annotations

import enum

from credit.errors import UnknownName


class Region(enum.Enum):
    """A region that runs its own node. The value is the stable code used everywhere."""

    __hash__ = object.__hash__  # members are singletons compared by identity; hashes in C

    BEIJING = "beijing"
    TIANJIN = "tianjin"
    HEBEI = "hebei"

    @property
    def name_zh(self) -> str:
        return _NAMES[self]

    @property
    def division_prefix(self) -> str:
        """The first two digits of the region's administrative division codes (GB/T 2260)."""
        return _PREFIXES[self]

    @property
    def divisions(self) -> tuple[str, ...]:
        """Real county-level division codes of the region, used for synthetic data."""
        return _DIVISIONS[self]

    @classmethod
    def parse(cls, value: str, *, field: str = "region") -> Region:
        """The region named by its code (``beijing``) or Chinese name (``北京``).

        Raises:
            UnknownName: no such region.
        """
        key = value.strip().lower()
        for region in cls:
            if key in (region.value, region.name_zh):
                return region
        known = ", ".join(r.value for r in cls)
        raise UnknownName.for_field(field, f"未知地区 '{value}' (unknown region '{value}'; known: {known})")


_NAMES = {Region.BEIJING: "北京", Region.TIANJIN: "天津", Region.HEBEI: "河北"}
_PREFIXES = {Region.BEIJING: "11", Region.TIANJIN: "12", Region.HEBEI: "13"}
# fmt: off
_DIVISIONS: dict[Region, tuple[str, ...]] = {
    # 东城 西城 朝阳 丰台 石景山 海淀 门头沟 房山 通州 顺义 昌平 大兴 怀柔 平谷 密云 延庆
    Region.BEIJING: (
        "110101", "110102", "110105", "110106", "110107", "110108", "110109", "110111",
        "110112", "110113", "110114", "110115", "110116", "110117", "110118", "110119",
    ),
    # 和平 河东 河西 南开 河北 红桥 东丽 西青 津南 北辰 武清 宝坻 滨海新区 宁河 静海 蓟州
    Region.TIANJIN: (
        "120101", "120102", "120103", "120104", "120105", "120106", "120110", "120111",
        "120112", "120113", "120114", "120115", "120116", "120117", "120118", "120119",
    ),
    # 石家庄长安 桥西 新华 裕华, 唐山路南 路北, 秦皇岛海港, 邯郸邯山, 邢台襄都, 保定竞秀,
    # 张家口桥东, 承德双桥, 沧州新华, 廊坊安次, 衡水桃城
    Region.HEBEI: (
        "130102", "130104", "130105", "130108", "130202", "130203", "130302", "130402",
        "130502", "130602", "130702", "130802", "130902", "131002", "131102",
    ),
}
# fmt: on
