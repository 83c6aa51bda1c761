"""SectorService: the eleven SPDR sector ETFs against SPY, cached in namespaces."""
