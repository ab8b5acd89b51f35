"""Every user-facing string of the app, in Chinese and English, in one place.

Pages call ``tr(key, **fmt)`` from :mod:`ui.common` (reads the session's language); pure modules such as
:mod:`ui.maps` call :func:`t` with an explicit ``lang``. Add a key here with both languages before using it; the
tests check that every key has both.
"""

from __future__ import annotations

LANGUAGES: tuple[str, ...] = ("zh", "en")
DEFAULT_LANGUAGE = "zh"

STRINGS: dict[str, dict[str, str]] = {
    # --- app shell -------------------------------------------------------------------------------------------------
    "app.title": {"zh": "长护险护理机构规划", "en": "LTCI care agency planner"},
    "sidebar.language": {"zh": "语言 / Language", "en": "Language / 语言"},
    "lang.zh": {"zh": "中文", "en": "中文"},
    "lang.en": {"zh": "English", "en": "English"},
    "sidebar.region": {"zh": "规划区域", "en": "Planning region"},
    "region.demo": {"zh": "示例区域：安道尔（真实 OSM 数据）", "en": "Demo region: Andorra (real OSM data)"},
    "region.loading": {"zh": "正在载入区域和路网…", "en": "Loading the region and its road network…"},
    "region.summary": {
        "zh": "{townships} 个乡镇 · {units} 个村/社区 · {agencies} 家机构 · 路网 {nodes:,} 个节点",
        "en": "{townships} townships · {units} villages/communities · {agencies} agencies · {nodes:,} road nodes",
    },
    "attribution": {"zh": "© OpenStreetMap contributors (ODbL)", "en": "© OpenStreetMap contributors (ODbL)"},
    "nav.agency_map": {"zh": "机构地图", "en": "Agency map"},
    "matrix.building": {"zh": "正在计算机构到各村的行车时间…", "en": "Computing drive times from agencies to units…"},
    # --- errors ----------------------------------------------------------------------------------------------------
    "error.input": {"zh": "输入有问题，请修改后重试：{message}", "en": "There is a problem with the input; please fix it and retry: {message}"},
    "error.planning": {"zh": "无法完成规划：{message}", "en": "The plan cannot be made: {message}"},
    "error.unexpected": {
        "zh": "出现意外错误（{kind}）。请检查刚才的输入或换一个选项后重试；详细信息已写入服务器日志。",
        "en": "Something unexpected went wrong ({kind}). Check the last input or try another option; the details "
              "are in the server log.",
    },
    "error.problems": {"zh": "需要修改的地方", "en": "What to fix"},
    # --- downloads -------------------------------------------------------------------------------------------------
    "download.csv": {"zh": "下载 CSV", "en": "Download CSV"},
    "download.xlsx": {"zh": "下载 Excel", "en": "Download Excel"},
    "download.gpkg": {"zh": "下载 GeoPackage", "en": "Download GeoPackage"},
    "download.geojson": {"zh": "下载 GeoJSON", "en": "Download GeoJSON"},
    # --- vocabulary ------------------------------------------------------------------------------------------------
    "care_type.hospital": {"zh": "医院护理", "en": "Hospital care"},
    "care_type.institution": {"zh": "机构护理", "en": "Institutional care"},
    "care_type.home": {"zh": "居家护理", "en": "Home care"},
    "status.designated": {"zh": "定点", "en": "Designated"},
    "status.suspended": {"zh": "暂停", "en": "Suspended"},
    "status.terminated": {"zh": "解除", "en": "Terminated"},
    "status.planned": {"zh": "规划", "en": "Planned"},
    "service_mode.home_visit": {"zh": "上门服务", "en": "Home visits"},
    "service_mode.day_care": {"zh": "日间照料", "en": "Day care"},
    "service_mode.residential": {"zh": "机构入住", "en": "Residential"},
    "service_mode.hospital_ward": {"zh": "医疗专护病房", "en": "Hospital ward"},
    "coord.wgs84": {"zh": "WGS84（GPS）", "en": "WGS84 (GPS)"},
    "coord.gcj02": {"zh": "GCJ-02（高德/腾讯）", "en": "GCJ-02 (AMap/Tencent)"},
    "coord.bd09": {"zh": "BD-09（百度）", "en": "BD-09 (Baidu)"},
    "yes": {"zh": "是", "en": "yes"},
    "no": {"zh": "否", "en": "no"},
    # --- map -------------------------------------------------------------------------------------------------------
    "map.legend.title": {"zh": "护理机构类型", "en": "Care agency type"},
    "map.legend.status": {"zh": "状态", "en": "Status"},
    "map.legend.suspended": {"zh": "暂停（不接新人）", "en": "Suspended (no new clients)"},
    "map.legend.terminated": {"zh": "解除", "en": "Terminated"},
    "map.legend.planned": {"zh": "规划（拟建）", "en": "Planned (proposed)"},
    "map.legend.place": {"zh": "您的位置", "en": "Your place"},
    "map.legend.route": {"zh": "推荐路线", "en": "Route"},
    "map.layer.agencies": {"zh": "护理机构", "en": "Care agencies"},
    "map.layer.units": {"zh": "村/社区", "en": "Villages / communities"},
    "map.layer.townships": {"zh": "乡镇边界", "en": "Township borders"},
    "map.layer.roads": {"zh": "主要道路", "en": "Main roads"},
    "map.layer.route": {"zh": "路线", "en": "Route"},
    "map.layer.place": {"zh": "所选位置", "en": "Chosen place"},
    "map.basemap.none": {"zh": "无底图（离线矢量）", "en": "No basemap (offline vector)"},
    "map.basemap.osm": {"zh": "OpenStreetMap", "en": "OpenStreetMap"},
    "map.basemap.amap": {"zh": "高德地图", "en": "AMap (Gaode)"},
    "map.basemap.tianditu": {"zh": "天地图", "en": "Tianditu"},
    "popup.type": {"zh": "类型", "en": "Type"},
    "popup.status": {"zh": "状态", "en": "Status"},
    "popup.address": {"zh": "地址", "en": "Address"},
    "popup.phone": {"zh": "电话", "en": "Phone"},
    "popup.modes": {"zh": "服务方式", "en": "Service modes"},
    "popup.served": {"zh": "服务人数", "en": "People served"},
    "popup.caregivers": {"zh": "持证护理员", "en": "Certified caregivers"},
    "popup.quality": {"zh": "质量评分", "en": "Quality score"},
    "popup.leading": {"zh": "龙头机构", "en": "Leading agency"},
    "popup.demo": {"zh": "示例数据 / illustrative figures", "en": "示例数据 / illustrative figures"},
    "popup.photo_alt": {"zh": "机构照片", "en": "Agency photo"},
    "tooltip.unit": {"zh": "{name}（{township}）", "en": "{name} ({township})"},
    # --- agency map page -------------------------------------------------------------------------------------------
    "agency.title": {"zh": "长护险护理机构地图", "en": "LTCI care agency map"},
    "agency.intro": {
        "zh": "有名称、有图片、有地址、可定位、能联系：按类型查看定点机构，选择您的村/社区，找到开车最快能到的机构。",
        "en": "Every agency with a name, a picture and an address, located and contactable. Pick your village or "
              "community to find the agencies you can reach fastest by road.",
    },
    "agency.demo_note": {
        "zh": "示例区域的机构人数、护理员和评分为示意数据，仅供演示。",
        "en": "Client counts, caregivers and scores in the demo region are illustrative figures.",
    },
    "agency.filters": {"zh": "筛选", "en": "Filters"},
    "agency.filter.care_type": {"zh": "护理类型", "en": "Care type"},
    "agency.filter.status": {"zh": "状态", "en": "Status"},
    "agency.filter.township": {"zh": "乡镇", "en": "Township"},
    "agency.filter.township_all": {"zh": "全部乡镇", "en": "All townships"},
    "agency.filter.service_mode": {"zh": "服务方式", "en": "Service mode"},
    "agency.filter.service_mode_all": {"zh": "全部服务方式", "en": "All service modes"},
    "agency.basemap": {"zh": "底图", "en": "Basemap"},
    "agency.basemap.online_note": {
        "zh": "在线底图需要联网；离线时请选“无底图”。高德底图为 GCJ-02 坐标，地图上的要素已同步偏移。",
        "en": "Online basemaps need the internet; offline, choose “No basemap”. AMap tiles are GCJ-02, so the "
              "overlays are shifted to match.",
    },
    "agency.tianditu_missing": {
        "zh": "未配置天地图密钥（环境变量 TIANDITU_KEY 或 secrets 中的 TIANDITU_KEY），已改用无底图。",
        "en": "No Tianditu key (environment variable TIANDITU_KEY or TIANDITU_KEY in secrets); showing no basemap.",
    },
    "agency.visible": {"zh": "地图上显示 {n} 家机构", "en": "{n} agencies on the map"},
    "agency.none_visible": {"zh": "没有符合筛选条件的机构，请放宽筛选。", "en": "No agency matches the filters; widen them."},
    "agency.table": {"zh": "机构列表", "en": "Agency list"},
    "finder.header": {"zh": "查找附近的护理机构", "en": "Find a care agency near you"},
    "finder.method": {"zh": "选择位置的方式", "en": "How to choose your place"},
    "finder.method.village": {"zh": "按村/社区名称", "en": "Village / community name"},
    "finder.method.click": {"zh": "在地图上点击", "en": "Click on the map"},
    "finder.method.coords": {"zh": "输入坐标", "en": "Enter coordinates"},
    "finder.village": {"zh": "村/社区（可输入名称搜索）", "en": "Village / community (type to search)"},
    "finder.village_placeholder": {"zh": "输入或选择村/社区…", "en": "Type or pick a village/community…"},
    "finder.click_hint": {"zh": "在地图上点击您的位置。", "en": "Click your place on the map."},
    "finder.clicked": {"zh": "地图点击位置", "en": "Point clicked on the map"},
    "finder.coord_system": {"zh": "坐标系", "en": "Coordinate system"},
    "finder.lon": {"zh": "经度", "en": "Longitude"},
    "finder.lat": {"zh": "纬度", "en": "Latitude"},
    "finder.locate": {"zh": "定位", "en": "Locate"},
    "finder.typed": {"zh": "输入的坐标", "en": "Typed coordinates"},
    "finder.k": {"zh": "列出家数", "en": "How many to list"},
    "finder.pick_place": {
        "zh": "请选择村/社区、在地图上点击或输入坐标，即可列出开车最快能到的机构。",
        "en": "Pick a village or community, click the map or enter coordinates to list the agencies you can reach "
              "fastest by road.",
    },
    "finder.results": {"zh": "离“{place}”最近的 {n} 家可接收新服务对象的机构（按行车时间）",
                       "en": "The {n} nearest agencies taking new clients from “{place}” (by drive time)"},
    "finder.none": {"zh": "没有可接收新服务对象的机构符合条件。", "en": "No agency taking new clients matches."},
    "finder.no_road": {
        "zh": "所选位置 {max_m:,.0f} 米内没有道路（最近的道路节点在 {access_m:,.0f} 米外），无法给出可靠的行车时间。请选择靠近道路的位置。",
        "en": "There is no road within {max_m:,.0f} m of this place (the nearest road node is {access_m:,.0f} m "
              "away), so no reliable drive time can be given. Pick a place nearer a road.",
    },
    "finder.not_offered": {"zh": "未列出的更近机构", "en": "Closer agencies not listed"},
    "finder.reason.suspended": {"zh": "暂停：保留现有服务对象，不接收新服务对象",
                                "en": "suspended: keeps its current clients, takes no new ones"},
    "finder.reason.planned": {"zh": "规划中：尚未开业", "en": "planned: not yet open"},
    "finder.reason.unreachable": {"zh": "与该位置之间没有道路连通", "en": "no road route to this place"},
    "finder.reason.no_road_at_agency": {"zh": "机构附近没有道路", "en": "no road near the agency"},
    "finder.not_offered_item": {"zh": "{name}（{minutes}）— {reason}", "en": "{name} ({minutes}) — {reason}"},
    "finder.route_to": {"zh": "在地图上显示路线", "en": "Show the route on the map"},
    "finder.route_summary": {
        "zh": "到 {name}：约 {minutes:.0f} 分钟，道路 {km:.1f} 公里。电话 {phone}",
        "en": "To {name}: about {minutes:.0f} min, {km:.1f} km by road. Phone {phone}",
    },
    "finder.place_at": {"zh": "位置：{lon:.5f}, {lat:.5f}（WGS84）", "en": "Place: {lon:.5f}, {lat:.5f} (WGS84)"},
    "finder.unreachable_minutes": {"zh": "不可达", "en": "unreachable"},
    "col.rank": {"zh": "排名", "en": "Rank"},
    "col.name": {"zh": "机构名称", "en": "Agency"},
    "col.minutes": {"zh": "行车分钟", "en": "Minutes"},
    "col.km": {"zh": "道路公里", "en": "Road km"},
    "col.care_type": {"zh": "类型", "en": "Type"},
    "col.status": {"zh": "状态", "en": "Status"},
    "col.phone": {"zh": "联系电话", "en": "Phone"},
    "col.address": {"zh": "地址", "en": "Address"},
    "col.township": {"zh": "乡镇", "en": "Township"},
    "col.service_modes": {"zh": "服务方式", "en": "Service modes"},
    "col.clients_served": {"zh": "服务人数", "en": "People served"},
    "col.certified_caregivers": {"zh": "持证护理员", "en": "Certified caregivers"},
    "col.capacity": {"zh": "容量", "en": "Capacity"},
    "col.quality_score": {"zh": "质量评分", "en": "Quality score"},
    "col.agency_id": {"zh": "机构编号", "en": "Agency ID"},
    "col.lon": {"zh": "经度", "en": "Longitude"},
    "col.lat": {"zh": "纬度", "en": "Latitude"},
}


def t(key: str, *, lang: str = DEFAULT_LANGUAGE, **fmt) -> str:
    """The string ``key`` in ``lang``, formatted with ``fmt``.

    Raises
    ------
    KeyError
        When ``key`` is not defined, so a typo fails in tests rather than showing a raw key to a user.
    """
    entry = STRINGS[key]
    text = entry.get(lang) or entry[DEFAULT_LANGUAGE]
    return text.format(**fmt) if fmt else text


def label(kind: str, value: str, *, lang: str = DEFAULT_LANGUAGE) -> str:
    """A vocabulary value (``kind`` = care_type, status, service_mode, coord) in ``lang``; unknown values unchanged."""
    key = f"{kind}.{value}"
    return t(key, lang=lang) if key in STRINGS else str(value)


def modes_label(modes: str, *, lang: str = DEFAULT_LANGUAGE) -> str:
    """A ';'-joined service-mode list in ``lang``, joined with the language's list separator."""
    parts = [label("service_mode", m, lang=lang) for m in str(modes or "").split(";") if m]
    return ("、" if lang == "zh" else ", ").join(parts)


# --- PDF report (planning/report.py via the command line and the pages) ----------------------------------------------
STRINGS.update({
    "report.title": {"zh": "长期护理保险定点护理机构规划报告", "en": "LTCI care agency planning report"},
    "report.minutes": {"zh": "到最近机构的行车时间（分钟）", "en": "Drive time to the nearest agency (min)"},
    "report.coverage_map": {"zh": "覆盖地图：各村到最近在营机构的行车时间", "en": "Coverage map: drive time to the nearest active agency"},
    "report.coverage_table": {"zh": "覆盖率（按阈值、护理类型、乡镇）", "en": "Coverage by threshold, care type and township"},
    "report.uncovered": {"zh": "最短阈值内未覆盖的村/社区（按需求排序）", "en": "Units not covered at the shortest threshold (by demand)"},
    "report.allocation": {"zh": "分片包干方案", "en": "District allocation (分片包干)"},
    "report.allocation_text": {"zh": "求解状态：{status}；最优性差距：{gap}。每个村/社区分配给一家机构，地图中颜色区分各机构片区。",
                               "en": "Solver status: {status}; optimality gap: {gap}. Every unit is assigned to one agency; colours show the zones."},
    "report.per_agency": {"zh": "各机构负责片区", "en": "Zones per agency"},
    "report.vs_nearest": {"zh": "与就近分配的比较", "en": "Compared with nearest-agency assignment"},
})


def translator(lang: str = DEFAULT_LANGUAGE):
    """``t`` bound to one language, for pure modules (reports, the command line) that take a translate function."""
    return lambda key, **fmt: t(key, lang=lang, **fmt)


# --- coverage page (ui/pages/coverage.py) ----------------------------------------------------------------------------
STRINGS.update({
    "nav.coverage": {"zh": "覆盖分析", "en": "Coverage"},
    "coverage.title": {"zh": "覆盖分析：谁在护理服务的可达范围内", "en": "Coverage: who is within reach of care"},
    "coverage.intro": {
        "zh": "按行车时间统计各阈值内被最近的在营机构覆盖的村数、人口和长护需求（总体、按护理类型、按乡镇），列出未覆盖的村，"
              "并用 E2SFCA 方法考虑机构容量评估可及性。开关机构或修改阈值不会重新计算最短路径。",
        "en": "Share of units, people and LTCI demand within each drive-time threshold of the nearest active agency "
              "(overall, per care type, per township), the units left uncovered, and capacity-aware access (E2SFCA). "
              "Switching agencies or thresholds never recomputes shortest paths.",
    },
    "coverage.settings": {"zh": "分析设置", "en": "Settings"},
    "coverage.unit_kind": {"zh": "规划单元", "en": "Planning units"},
    "coverage.unit_kind.villages": {"zh": "村/社区", "en": "Villages / communities"},
    "coverage.unit_kind.h3": {"zh": "H3 六边形网格", "en": "H3 hexagon grid"},
    "coverage.unit_kind.square": {"zh": "正方形网格", "en": "Square grid"},
    "coverage.h3_resolution": {"zh": "H3 分辨率", "en": "H3 resolution"},
    "coverage.h3_option": {"zh": "{res}（每格约 {area:,.3g} 平方公里）", "en": "{res} (about {area:,.3g} km² per cell)"},
    "coverage.square_m": {"zh": "网格边长（米）", "en": "Cell size (m)"},
    "coverage.grid_h3": {"zh": "H3 分辨率 {res}", "en": "H3 resolution {res}"},
    "coverage.grid_square": {"zh": "{size:,.0f} 米正方形网格", "en": "{size:,.0f} m squares"},
    "coverage.grid_refused": {
        "zh": "网格过细，已拒绝：{what} 将生成 {count:,} 个单元，超过上限 {limit:,} 个。请选择较粗的分辨率或较大的网格。",
        "en": "Grid refused: {what} would make {count:,} cells, over the limit of {limit:,}. Choose a coarser "
              "resolution or larger cells.",
    },
    "coverage.grid_building": {"zh": "正在生成网格（{what}，{count:,} 个单元）并插值人口…",
                               "en": "Building the grid ({what}, {count:,} cells) and interpolating population…"},
    "coverage.grid_matrix": {"zh": "正在计算机构到 {count:,} 个网格单元的行车时间…",
                             "en": "Computing drive times from agencies to {count:,} grid cells…"},
    "coverage.grid_summary": {"zh": "网格共 {n:,} 个单元，人口合计 {population:,.0f}（{source}，总量守恒）。",
                              "en": "{n:,} grid cells holding {population:,.0f} people ({source}; total conserved)."},
    "coverage.pop_source.points": {"zh": "由区域人口图层插值", "en": "interpolated from the region's population layer"},
    "coverage.pop_source.units": {"zh": "由村/社区人口按面积插值", "en": "interpolated by area from the village units"},
    "coverage.noun.villages": {"zh": "村", "en": "villages"},
    "coverage.noun.grid": {"zh": "网格单元", "en": "grid cells"},
    "coverage.thresholds": {"zh": "行车时间阈值", "en": "Drive-time thresholds"},
    "coverage.minutes": {"zh": "{m} 分钟", "en": "{m} min"},
    "coverage.map_threshold": {"zh": "地图与未覆盖清单使用的阈值", "en": "Threshold for the map and the uncovered list"},
    "coverage.no_thresholds": {"zh": "请至少选择一个行车时间阈值。", "en": "Choose at least one drive-time threshold."},
    "coverage.active_agencies": {"zh": "在营机构（取消勾选即视为关闭）", "en": "Active agencies (remove one to switch it off)"},
    "coverage.active_none_placeholder": {"zh": "没有选择在营机构", "en": "No active agency chosen"},
    "coverage.active_all": {"zh": "全部开启", "en": "Switch all on"},
    "coverage.active_reset": {"zh": "恢复登记状态", "en": "Back to registry status"},
    "coverage.agency_on": {"zh": "在营", "en": "active"},
    "coverage.agency_off": {"zh": "已关闭（不计入覆盖）", "en": "switched off (not counted)"},
    "coverage.no_active": {
        "zh": "没有在营机构：所有{noun}均未覆盖（{units:,} 个单元，{population:,.0f} 人，长护需求 {demand:,.1f}）。"
              "请在“在营机构”中至少选择一家。",
        "en": "No active agency: all {noun} are uncovered ({units:,} units, {population:,.0f} people, LTCI demand "
              "{demand:,.1f}). Choose at least one agency under “Active agencies”.",
    },
    "coverage.missing_type": {"zh": "没有在营的{types}机构：在该护理类型下所有单元均未覆盖。",
                              "en": "No active {types} agency: every unit is uncovered for that care type."},
    "coverage.unreachable": {
        "zh": "{n:,} 个{noun}（{population:,.0f} 人）无法经道路到达任何在营机构：可能位于路网范围之外，或离道路超过允许的接驳距离。",
        "en": "{n:,} {noun} ({population:,.0f} people) cannot reach any active agency by road: they may lie outside "
              "the road network or too far from a road.",
    },
    "coverage.summary": {"zh": "{m} 分钟内的覆盖情况", "en": "Coverage within {m} minutes"},
    "coverage.metric.units": {"zh": "覆盖的{noun}", "en": "Covered {noun}"},
    "coverage.metric.population": {"zh": "覆盖的人口", "en": "Covered people"},
    "coverage.metric.demand": {"zh": "覆盖的长护需求", "en": "Covered LTCI demand"},
    "coverage.metric.help": {"zh": "已覆盖 {covered:,.1f} / 合计 {total:,.1f}", "en": "{covered:,.1f} covered of {total:,.1f}"},
    "coverage.table_title": {"zh": "各阈值覆盖率", "en": "Coverage at each threshold"},
    "coverage.measure": {"zh": "按何种口径统计", "en": "Share of"},
    "coverage.measure.demand": {"zh": "长护需求（预计失能人数）", "en": "LTCI demand (expected clients)"},
    "coverage.measure.population": {"zh": "人口", "en": "People"},
    "coverage.measure.units": {"zh": "{noun}数", "en": "Number of {noun}"},
    "coverage.col.scope": {"zh": "范围", "en": "Scope"},
    "coverage.col.group": {"zh": "分组", "en": "Group"},
    "coverage.col.total.demand": {"zh": "长护需求合计", "en": "Total demand"},
    "coverage.col.total.population": {"zh": "人口合计", "en": "Total people"},
    "coverage.col.total.units": {"zh": "单元合计", "en": "Total units"},
    "coverage.scope.overall": {"zh": "全域", "en": "Overall"},
    "coverage.scope.care_type": {"zh": "护理类型", "en": "Care type"},
    "coverage.scope.township": {"zh": "乡镇", "en": "Township"},
    "coverage.group.all": {"zh": "全部", "en": "All"},
    "coverage.group.no_township": {"zh": "（未划分乡镇）", "en": "(no township)"},
    "coverage.table_note": {
        "zh": "“全域”和“乡镇”行按任一类型的最近在营机构计算；“护理类型”行只计该类型的在营机构。行车时间含机构和村到最近道路的接驳段。",
        "en": "Overall and township rows count the nearest active agency of any type; care-type rows count only "
              "active agencies of that type. Drive times include the access legs to and from the road.",
    },
    "coverage.col.unit": {"zh": "村/单元", "en": "Unit"},
    "coverage.col.unit_id": {"zh": "单元编号", "en": "Unit ID"},
    "coverage.col.population": {"zh": "人口", "en": "People"},
    "coverage.col.demand": {"zh": "长护需求", "en": "LTCI demand"},
    "coverage.col.nearest_minutes": {"zh": "到最近机构（分钟）", "en": "To nearest agency (min)"},
    "coverage.col.nearest_agency": {"zh": "最近的在营机构", "en": "Nearest active agency"},
    "coverage.unreachable_short": {"zh": "不可达", "en": "unreachable"},
    "coverage.uncovered_title": {"zh": "{m} 分钟内未覆盖的单元（按需求排序）", "en": "Units not covered within {m} min (by demand)"},
    "coverage.uncovered_count": {"zh": "共 {n:,} 个{noun}未覆盖，长护需求合计 {demand:,.1f}。",
                                 "en": "{n:,} {noun} uncovered, holding {demand:,.1f} LTCI demand."},
    "coverage.all_covered": {"zh": "所有{noun}都在 {m} 分钟内可到达在营机构。", "en": "All {noun} reach an active agency within {m} min."},
    "coverage.map_title": {"zh": "到最近在营机构的行车时间（未覆盖阈值 {m} 分钟）",
                           "en": "Drive time to the nearest active agency (uncovered beyond {m} min)"},
    "coverage.show_isochrones": {"zh": "计算各机构服务范围（等时圈，可在图层菜单中逐个打开）",
                                 "en": "Compute each agency's service area (isochrone; switch them on in the layer menu)"},
    "coverage.isochrones_building": {"zh": "正在计算各机构的服务范围…", "en": "Computing the agencies' service areas…"},
    "coverage.layer.minutes": {"zh": "行车时间（分钟）", "en": "Drive time (min)"},
    "coverage.layer.isochrone": {"zh": "服务范围 {m} 分钟：{name}", "en": "{m}-min service area: {name}"},
    "coverage.isochrone_tip": {"zh": "{name}：{m} 分钟服务范围", "en": "{name}: {m}-minute service area"},
    "coverage.layer.uncovered": {"zh": "{m} 分钟内未覆盖", "en": "Not covered within {m} min"},
    "coverage.legend.title": {"zh": "到最近在营机构的行车时间", "en": "Drive time to nearest active agency"},
    "coverage.legend.uncovered": {"zh": "{m} 分钟内未覆盖", "en": "Not covered within {m} min"},
    "coverage.class.band": {"zh": "{lo}–{hi} 分钟", "en": "{lo}–{hi} min"},
    "coverage.class.over": {"zh": "超过 {hi} 分钟", "en": "over {hi} min"},
    "coverage.class.unreachable": {"zh": "不可达", "en": "unreachable"},
    "coverage.access.title": {"zh": "考虑容量的可及性（E2SFCA 增强两步移动搜寻法）",
                              "en": "Capacity-aware accessibility (E2SFCA)"},
    "coverage.access.intro": {
        "zh": "第一步：每家机构的床位/名额除以其服务范围内按距离衰减加权的长护需求；第二步：每个单元把可达机构的比值按衰减权重相加，"
              "得分即“每位长护需求可获得的名额”。得分不低于全域供需比为“服务充足”，低于为“服务不足”。没有长护需求的单元不参与分类。",
        "en": "Step 1: each agency's places divided by the decay-weighted LTCI demand in its catchment; step 2: each unit "
              "sums the ratios of the agencies it reaches, weighted by the same decay — places per LTCI client. A unit "
              "at or above the regional supply/demand ratio is well served, below it under-served. Units without "
              "demand are not classed.",
    },
    "coverage.decay": {"zh": "距离衰减函数", "en": "Distance decay"},
    "coverage.decay.stepped": {"zh": "分段（Luo & Qi 2009）", "en": "Stepped (Luo & Qi 2009)"},
    "coverage.decay.gaussian": {"zh": "高斯", "en": "Gaussian"},
    "coverage.decay.named": {"zh": "**所用衰减函数：** {text}", "en": "**Decay function used:** {text}"},
    "coverage.decay.stepped_text": {
        "zh": "Luo & Qi（2009）分段函数：0–{a} 分钟权重 {w1:.2f}，{a}–{b} 分钟 {w2:.2f}，{b}–{c} 分钟 {w3:.2f}，超过 {c} 分钟为 0。",
        "en": "Luo & Qi (2009) stepped function: weight {w1:.2f} for 0–{a} min, {w2:.2f} for {a}–{b} min, "
              "{w3:.2f} for {b}–{c} min, 0 beyond {c} min.",
    },
    "coverage.decay.gaussian_text": {
        "zh": "高斯函数 W = exp(−t² / 2σ²)，σ = {sigma} 分钟，超过 {c} 分钟为 0。",
        "en": "Gaussian W = exp(−t² / 2σ²) with σ = {sigma} min, 0 beyond {c} min.",
    },
    "coverage.catchment": {"zh": "服务半径（行车时间）", "en": "Catchment (drive time)"},
    "coverage.access.care_type": {"zh": "供给机构类型", "en": "Supplying care type"},
    "coverage.access.no_supply": {"zh": "没有在营机构提供名额：所有单元均无可及性。", "en": "No active agency supplies places: no unit has access."},
    "coverage.access.regional_ratio": {"zh": "全域供需比（名额/需求）", "en": "Regional ratio (places per client)"},
    "coverage.access.regional_ratio_help": {"zh": "在营机构名额合计 ÷ 长护需求合计；也是“服务充足”的判定线。",
                                            "en": "Total places of active agencies ÷ total LTCI demand; the line between well and under-served."},
    "coverage.access.class.well_served": {"zh": "服务充足", "en": "Well served"},
    "coverage.access.class.under_served": {"zh": "服务不足", "en": "Under-served"},
    "coverage.access.class.no_access": {"zh": "服务半径内无机构", "en": "No agency in catchment"},
    "coverage.access.class.no_demand": {"zh": "无长护需求", "en": "No LTCI demand"},
    "coverage.access.count": {"zh": "{n:,} 个{noun}", "en": "{n:,} {noun}"},
    "coverage.access.demand_share": {"zh": "占需求 {share:.1f}%", "en": "{share:.1f}% of demand"},
    "coverage.access.layer": {"zh": "E2SFCA 可及性分类", "en": "E2SFCA access class"},
    "coverage.access.legend": {"zh": "E2SFCA 可及性", "en": "E2SFCA access"},
    "coverage.access.col.score": {"zh": "E2SFCA 得分", "en": "E2SFCA score"},
    "coverage.access.col.relative": {"zh": "相对全域（%）", "en": "Relative to region (%)"},
    "coverage.access.col.class": {"zh": "分类", "en": "Class"},
    "coverage.access.lacking": {"zh": "服务不足或无机构的{noun}：{n:,} 个（得分从低到高）",
                                "en": "Under-served {noun} or with no agency in reach: {n:,} (lowest score first)"},
    "coverage.access.lacking_short": {"zh": "服务不足的单元（E2SFCA）", "en": "Under-served units (E2SFCA)"},
    "coverage.access.none_lacking": {"zh": "所有有长护需求的单元都服务充足。", "en": "Every unit with LTCI demand is well served."},
    "coverage.downloads": {"zh": "下载", "en": "Downloads"},
    "coverage.dl.xlsx": {"zh": "覆盖表 Excel", "en": "Coverage tables (Excel)"},
    "coverage.dl.gpkg": {"zh": "单元及指标 GeoPackage", "en": "Units with metrics (GeoPackage)"},
    "coverage.dl.csv": {"zh": "单元及指标 CSV", "en": "Units with metrics (CSV)"},
    "coverage.dl.pdf": {"zh": "一键生成 PDF 报告", "en": "PDF report (one click)"},
    "coverage.dl.note": {
        "zh": "Excel 含覆盖率长表、未覆盖清单、各单元指标和 E2SFCA 机构比值；GeoPackage 含单元多边形（附行车时间、覆盖标记和 E2SFCA 得分）与机构点位。",
        "en": "The workbook holds the coverage table, the uncovered list, per-unit metrics and the E2SFCA agency "
              "ratios; the GeoPackage holds unit polygons (drive time, coverage flags, E2SFCA scores) and the agencies.",
    },
})
