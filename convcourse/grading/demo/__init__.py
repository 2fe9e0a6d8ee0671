"""The demo's submissions: samples generated from source/ and release/, hostile cells, points of notebook cells."""
