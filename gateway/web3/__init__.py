"""gateway.web3"""
