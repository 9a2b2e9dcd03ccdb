// SPDX-License-Identifier: MIT
// The demo's token: OpenZeppelin Contracts v5 ERC20 + Ownable, deployed on a local anvil chain.
pragma solidity ^0.8.20;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

contract VigilToken is ERC20, Ownable {
    constructor(uint256 supply) ERC20("Vigil Demo Token", "VDT") Ownable(msg.sender) {
        _mint(msg.sender, supply);
    }

    function mint(address to, uint256 amount) external onlyOwner {
        _mint(to, amount);
    }
}
