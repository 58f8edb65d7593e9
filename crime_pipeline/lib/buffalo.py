"""Fixed geography of Buffalo, NY, shared by validation, features, the generator and the maps."""

# City limits as public analyses give them (see ../shared/fixtures/README.md).
LAT_MIN, LAT_MAX = 42.828, 42.966
LON_MIN, LON_MAX = -78.910, -78.799
DOWNTOWN = (42.8864, -78.8784)  # Niagara Square, Buffalo City Hall
