module encchat

go 1.26
