-- safegrid basemap: OpenStreetMap tags -> the layers named in config.json.
-- Kept deliberately small: what a dispatcher needs under the grids (roads with names, water,
-- green and built-up areas, buildings, police/fire/hospitals/schools, place names).

node_keys = { "amenity", "place", "healthcare" }

function init_function() end
function exit_function() end

-- Road classes, the zoom each appears from, and whether its name is labelled.
local road_class = {
	motorway = "motorway", motorway_link = "motorway",
	trunk = "trunk", trunk_link = "trunk",
	primary = "primary", primary_link = "primary",
	secondary = "secondary", secondary_link = "secondary",
	tertiary = "tertiary", tertiary_link = "tertiary",
	unclassified = "minor", residential = "minor", living_street = "minor", road = "minor",
	service = "service", pedestrian = "path", footway = "path", cycleway = "path",
	path = "path", steps = "path", track = "path",
}
local road_minzoom = {
	motorway = 8, trunk = 8, primary = 10, secondary = 11, tertiary = 12,
	minor = 13, service = 14, path = 14, rail = 11,
}

local poi_classes = {
	police = true, fire_station = true, hospital = true, clinic = true, school = true,
	university = true, college = true, kindergarten = true, townhall = true,
}

local landuse_class = {
	park = "park", garden = "park", playground = "park", pitch = "park",
	grass = "green", meadow = "green", recreation_ground = "green", village_green = "green",
	forest = "forest", wood = "forest", scrub = "forest",
	residential = "residential", industrial = "industrial", commercial = "commercial",
	retail = "commercial", school = "education", university = "education", college = "education",
	hospital = "hospital",
}

local function names(obj)
	local name = obj:Find("name")
	if name ~= "" then obj:Attribute("name", name) end
	local en = obj:Find("name:en")
	if en ~= "" then obj:Attribute("name_en", en) end
end

local function poi(obj)
	local amenity = obj:Find("amenity")
	if poi_classes[amenity] then
		obj:Attribute("class", amenity)
		names(obj)
		return true
	end
	return false
end

function node_function(node)
	local amenity = node:Find("amenity")
	if poi_classes[amenity] then
		node:Layer("poi", false)
		poi(node)
		return
	end
	local place = node:Find("place")
	if place ~= "" and node:Find("name") ~= "" then
		node:Layer("place", false)
		node:Attribute("class", place)
		names(node)
		if place == "suburb" or place == "town" or place == "city" then node:MinZoom(10)
		elseif place == "village" or place == "quarter" then node:MinZoom(12)
		else node:MinZoom(13) end
	end
end

function way_function(way)
	local highway = way:Find("highway")
	local railway = way:Find("railway")
	local waterway = way:Find("waterway")
	local natural = way:Find("natural")
	local landuse = way:Find("landuse")
	local leisure = way:Find("leisure")
	local amenity = way:Find("amenity")
	local building = way:Find("building")
	local closed = way:IsClosed()

	local class = road_class[highway]
	if class == nil and (railway == "rail" or railway == "subway" or railway == "light_rail") then
		class = "rail"
	end
	if class ~= nil and not (closed and way:Find("area") == "yes") then
		way:Layer("road", false)
		way:Attribute("class", class)
		way:MinZoom(road_minzoom[class])
		if string.find(highway, "_link") then way:AttributeNumeric("ramp", 1) end
		if way:Find("oneway") == "yes" or highway == "motorway" then way:AttributeNumeric("oneway", 1) end
		if way:Find("bridge") == "yes" then way:Attribute("brunnel", "bridge")
		elseif way:Find("tunnel") == "yes" then way:Attribute("brunnel", "tunnel") end
		if class ~= "rail" and (way:Find("name") ~= "" or way:Find("ref") ~= "") then
			way:Layer("road_name", false)
			way:Attribute("class", class)
			names(way)
			local ref = way:Find("ref")
			if ref ~= "" then way:Attribute("ref", ref) end
			way:MinZoom(math.max(13, road_minzoom[class]))
		end
		return
	end

	if natural == "water" or landuse == "reservoir" or landuse == "basin" or waterway == "riverbank" then
		if closed then way:Layer("water", true) end
		return
	end
	if waterway == "river" or waterway == "canal" or waterway == "stream" or waterway == "drain" then
		way:Layer("waterway", false)
		way:Attribute("class", waterway)
		names(way)
		if waterway ~= "river" then way:MinZoom(13) end
		return
	end

	if building ~= "" and closed then
		way:Layer("building", true)
		-- A police station or hospital drawn as a building is also a point of interest.
		if poi_classes[amenity] then
			way:LayerAsCentroid("poi")
			poi(way)
		end
		return
	end

	if closed then
		local lu = landuse_class[landuse] or landuse_class[leisure] or landuse_class[natural] or landuse_class[amenity]
		if lu ~= nil then
			way:Layer("landuse", true)
			way:Attribute("class", lu)
		end
		if poi_classes[amenity] then
			way:LayerAsCentroid("poi")
			poi(way)
		end
	end
end
